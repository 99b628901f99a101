"""The local web studio behind `dreamvid serve`: upload, dream, watch, keep (issues 17, 26).

uploads.py    what a request may bring in: sanitised names, type and size limits, decoded-size
              limits, paths held inside their folder (`inside`)
options.py    the page's vocabulary: modes, the fields each offers (the library's parameter
              catalogue, params.py), a job request -> the keywords of a render function and the
              equivalent CLI command, the one number parser, the short list of layers
jobs.py       jobs on disk (DATA/jobs/<id>/: input/, output/, job.json, settings.toml), per-browser
              limits, cancel, resume at start-up, delete, the gallery's changes
fairqueue.py  the queue: browsers take turns, one job runs at a time
pictures.py   the small JPEGs beside a result (before, poster, an upload's preview)
server.py     the FastAPI app: the guard (host, origin, token), headers, the API, the page in static/

Only `server.py` imports the web framework, and only `dreamvid serve` imports `server.py`:
`pip install "dreamvid[web]"` adds FastAPI and uvicorn. Jobs run through the library's
public render functions with a progress callback, as the CLI's commands do.
"""
