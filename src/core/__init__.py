"""surge.core"""
