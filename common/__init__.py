"""Code the edges (`http_edge/`) and the workers (`workers/`) share and neither tier owns.

`wire.py`: nameko's RPC conventions on the AMQP wire; it imports neither tier.
`logs.py`: the one JSON log format; `request_id.py`: the X-Request-ID rule (also rendered
into the gateway's nginx map). Neither imports a tier.
`defaults.py`: the defaults every tier shares (broker, database, ports, P_VALUE, body limit).
`auth/`: the credentials store and the route -> ACL group table (SPEC §7).
"""
