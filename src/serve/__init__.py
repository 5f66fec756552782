"""surge.serve"""
