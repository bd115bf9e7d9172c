"""worker/daemon"""
