"""surge.run"""
