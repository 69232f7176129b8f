-- wrk script for bench/serve_load.sh: POST /v1/embeddings (OpenAI's API) with one image as a
-- data URI. MODEL_NAME and IMAGE_DATA_URI are replaced by the served model's name and the photo.
wrk.method = "POST"
wrk.body = '{"model": "MODEL_NAME", "input": ["IMAGE_DATA_URI"], "encoding_format": "float"}'
wrk.headers["Content-Type"] = "application/json"
