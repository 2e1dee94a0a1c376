"""Running MySpinBot: the embedded Redis, the HTTP server's processes and what runs beside them."""
