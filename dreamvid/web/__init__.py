"""The local web studio behind `dreamvid serve`: upload, dream, watch, keep (issue 17).

uploads.py    what a request may bring in: sanitised names, type and size limits, decoded-size
              limits, paths held inside their folder (`inside`)
options.py    the page's vocabulary: modes, the user's parameters with their ranges, a job
              request -> the keywords of a render function, and the equivalent CLI command
jobs.py       jobs on disk (DATA/jobs/<id>/: input/, output/, job.json, settings.toml), the
              queue (one job at a time), cancel, resume at start-up
server.py     the FastAPI app: the guard (host, origin, token), the API, the page in static/

Only `server.py` imports the web framework, and only `dreamvid serve` imports `server.py`:
`pip install "dreamvid[web]"` adds FastAPI and uvicorn. Jobs run through the library's
public render functions with a progress callback, as the CLI's commands do.
"""
