"""SiamRPN (Li et al., CVPR 2018): a Siamese AlexNet with a region proposal subnetwork.

``tracker.SiamRPNTracker`` tracks; ``targets`` holds the box coding, anchor sampling and
loss that ``training/`` needs. Nothing here imports Qt.
"""
