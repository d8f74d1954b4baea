"""An MLServer custom runtime serving the MNIST TFLite model (a benchmark peer).

Loaded by MLServer from the ``model-settings.json`` that ``benchmarks.peers.mlserver_spec``
writes; ``mlserver`` is not a project dependency.
"""

from __future__ import annotations

import numpy as np
from mlserver import MLModel  # type: ignore[import-not-found]
from mlserver.codecs import NumpyCodec  # type: ignore[import-not-found]
from mlserver.types import (  # type: ignore[import-not-found]
    InferenceRequest,
    InferenceResponse,
)


class TFLiteModel(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        from ai_edge_litert.interpreter import Interpreter

        uri = self.settings.parameters.uri
        self.interp = Interpreter(model_path=uri, num_threads=1)
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.size = -1
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        if len(x) != self.size:
            self.interp.resize_tensor_input(self.inp, list(x.shape), strict=False)
            self.interp.allocate_tensors()
            self.size = len(x)
        self.interp.set_tensor(self.inp, x)
        self.interp.invoke()
        probs = np.array(self.interp.get_tensor(self.out))
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("probabilities", probs)]
        )
