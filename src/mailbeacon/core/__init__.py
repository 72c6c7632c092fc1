"""The pure core of mailbeacon: tokens, keys, HTML/MIME rewriting. No I/O; see README.md."""
