"""Storage: the Redis key schema, the Lua scripts and the only code that talks to Redis."""
