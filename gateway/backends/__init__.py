"""Plumbing for the servers the gateway keeps state in: Redis (one pipelined connection,
what counts as Redis being unreachable) and PostgreSQL (a pool with migrations).

Nothing is imported here: a gateway without PostgreSQL never loads asyncpg.
"""
