"""worker/compliance"""
