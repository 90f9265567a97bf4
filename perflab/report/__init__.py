"""What perflab shows: plotly charts (charts.py) built from the store through perflab.analysis.

Renderers take a store and a run id or a source and return a figure; they compute no
verdicts of their own (the analysis modules do) and never import the lab.
"""
