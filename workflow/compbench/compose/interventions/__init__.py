"""Interventions of the composability study: knowledge editing, compression, unlearning.

``registry`` defines what an intervention is; ``methods`` lists them (one import line
each); one module per method.
"""
