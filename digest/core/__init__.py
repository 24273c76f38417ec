"""The shared core every stage stands on: value types, errors, settings, the guarded
HTTP client, state files, the clock, address rules, the registries.
"""
