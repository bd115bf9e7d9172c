"""worker/media"""
