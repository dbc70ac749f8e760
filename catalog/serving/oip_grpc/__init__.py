"""The Open Inference Protocol v2 over gRPC: ``inference.proto`` (the service ``inference.GRPCInferenceService``)
and its generated Python, ``inference_pb2*`` (never edited: ``make grpc-code`` regenerates them, a test checks)."""
