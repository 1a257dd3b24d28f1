"""Reference meter firmware: register, seq, store-and-forward, last will, resend."""
