"""The node daemon: enrolls, follows the netmap feed, reconciles the desired
state into the data plane and host configuration, and reports endpoints and
statistics. It keeps forwarding on the last netmap when the controller is gone.
"""
