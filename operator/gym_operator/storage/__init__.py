"""Object storage: file:// and s3:// behind one interface, output layout, atomic part commits.

No kopf, no model calls.
"""
