-- wrk script for bench/serve_load.sh: POST /embed with a JSON body of three texts.
wrk.method = "POST"
wrk.body = '{"texts": ["a photo of a cat", "an astronaut in space", "a red rocket"]}'
wrk.headers["Content-Type"] = "application/json"
