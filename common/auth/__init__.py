"""Identity shared by the edges, the launcher and the gateway renderer (SPEC §7).

`store.py`: the credentials store (consumers, API keys, issuers) and end-user token minting;
`acl.py`: the ACL group each route needs and the paths open without credentials.
"""
