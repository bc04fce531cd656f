"""users_v1: the first generation; clients may supply their own createdAt/updatedAt."""

from workers import users_domain, users_service


class UsersV1(users_service.UsersService):
    name = "users_v1"
    generation = users_domain.V1
