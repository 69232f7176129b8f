-- wrk script for bench/serve_load.sh: POST /v1/embeddings (OpenAI's API) with three short texts.
-- MODEL_NAME is replaced by the served model's name.
wrk.method = "POST"
wrk.body = '{"model": "MODEL_NAME", "input": ["a photo of a cat", "an astronaut in space", "a red rocket"], "encoding_format": "float"}'
wrk.headers["Content-Type"] = "application/json"
