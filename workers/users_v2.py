"""users_v2: the new generation; the service owns createdAt/updatedAt."""

from workers.users import domain as users_domain
from workers.users import service as users_service


class UsersV2(users_service.UsersService):
    name = "users_v2"
    generation = users_domain.V2
