"""Speed and memory measurements of enkash_async against raw aiohttp (run by hand)."""
