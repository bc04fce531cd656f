"""users_v2: the new generation; the service owns createdAt/updatedAt."""

from workers import users_domain, users_service


class UsersV2(users_service.UsersService):
    name = "users_v2"
    generation = users_domain.V2
