"""LitServe serving the MNIST TFLite model on the TF Serving JSON request (a benchmark peer).

Run by ``benchmarks.run --peers`` with an interpreter that has ``litserve``; not a project
dependency. ``--max-batch-size 1`` turns LitServe's batching off.
"""

# No ``from __future__ import annotations``: LitServe reads decode_request's annotations at run
# time, and an unannotated ``request`` makes it parse the body as JSON.
import argparse
from typing import Any

import litserve as ls  # type: ignore[import-not-found]
import numpy as np


class MnistAPI(ls.LitAPI):  # type: ignore[misc]
    def __init__(self, model_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_file = model_file

    def setup(self, device: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=self.model_file, num_threads=1)
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.size = -1

    def decode_request(self, request):  # type: ignore[no-untyped-def]  # see the comment above
        return np.asarray(request["instances"], dtype=np.float32)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self.size:
            self.interp.resize_tensor_input(self.inp, list(x.shape), strict=False)
            self.interp.allocate_tensors()
            self.size = len(x)
        self.interp.set_tensor(self.inp, x)
        self.interp.invoke()
        return np.array(self.interp.get_tensor(self.out))

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return [row[None] for row in output]

    def encode_response(self, output):  # type: ignore[no-untyped-def]
        return {"predictions": output.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="litserve_server.py")
    parser.add_argument("--model-file", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-path", default="/predict")
    parser.add_argument("--max-batch-size", type=int, default=1)
    args = parser.parse_args()
    batch = args.max_batch_size
    api = MnistAPI(
        args.model_file,
        api_path=args.api_path,
        max_batch_size=batch,
        batch_timeout=0.002 if batch > 1 else 0.0,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, generate_client_file=False)


if __name__ == "__main__":
    main()
