"""The sample service perflab puts under load: a modular monolith on Starlette + uvicorn.

It stands alone, like a user's service: perflab runs it as a process
(``python -m sample_workload``) and never imports it, and it never imports perflab.
See README.md for the endpoints and every setting.
"""

__version__ = "0.1.0"
