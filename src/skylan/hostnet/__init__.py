"""Idempotent "make it so" functions for the host's own configuration:
addresses, routes, sysctls and the skylan nftables table (cloaking, gateways).
"""
