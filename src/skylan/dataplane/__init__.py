"""The only code that touches TAP devices and UDP sockets: the super-frame fast
path for encrypted networks and the kernel VXLAN driver for unencrypted ones.
"""
