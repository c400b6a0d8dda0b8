"""The controllers' only door to kube-apiserver: `KubeClient`, its `ApiError` family, the resources."""

from controllers.kube.client import ApiKubeClient, KubeClient, PatchType, connect
from controllers.kube.errors import (
    AlreadyExistsError,
    ApiError,
    ConfigError,
    ConflictError,
    DecodeError,
    ExpiredError,
    ForbiddenError,
    InvalidError,
    KubeError,
    NotFoundError,
    TransportError,
)
from controllers.kube.resources import Resource

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "ApiKubeClient",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "ExpiredError",
    "ForbiddenError",
    "InvalidError",
    "KubeClient",
    "KubeError",
    "NotFoundError",
    "PatchType",
    "Resource",
    "TransportError",
    "connect",
]
