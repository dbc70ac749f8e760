"""The Open Inference Protocol v2 over gRPC: ``inference.proto`` (the service ``inference.GRPCInferenceService``)
and its generated Python, ``inference_pb2*`` (never edited: ``make grpc-code`` regenerates them, a test checks)."""

__all__ = ["SERVICE"]

SERVICE = "inference.GRPCInferenceService"  # the service's full name: methods are /SERVICE/Method
