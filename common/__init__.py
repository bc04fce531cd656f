"""Code the edges (`http_edge/`) and the workers (`workers/`) share and neither tier owns.

`wire.py`: nameko's RPC conventions on the AMQP wire. Nothing here imports either tier.
"""
