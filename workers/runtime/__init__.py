"""What every service runs on, owned by no one service: the Mongo dependency provider, RPC
and event entrypoints that survive broker and database faults, call logging, metrics, and
the response shape of stored documents."""
