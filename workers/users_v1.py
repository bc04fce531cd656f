"""users_v1: the first generation; clients may supply their own createdAt/updatedAt."""

from workers.users import domain as users_domain
from workers.users import service as users_service


class UsersV1(users_service.UsersService):
    name = "users_v1"
    generation = users_domain.V1
