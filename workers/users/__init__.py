"""The users service both generations share: entrypoints (`service.py`), the rules
(`domain.py`), its MongoDB access (`repository.py`) and the email claims (`email_claims.py`).
`workers/users_v1.py` and `users_v2.py` name the two generations for `nameko run`."""
