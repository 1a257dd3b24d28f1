"""EMS portal: Litestar app for administrators and clients."""
