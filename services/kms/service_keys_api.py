"""gRPC servicer of ``strongroom.kms.v1.ServiceKeys`` (protos/strongroom/kms/v1/service_keys.proto).

Internal API for the services of the stack: only AWS service callers (principal type
``AWSService``, or a call made on an account's behalf by a service, ``invoked_by`` set) may
use it. Nothing here is recorded in CloudTrail: AWS owned keys are not the account's.
"""

from __future__ import annotations

import grpc
from strongroom.kms.v1 import service_keys_pb2 as pb
from strongroom.kms.v1 import service_keys_pb2_grpc

from common.caller import caller_from_metadata
from services.kms.domain import errors
from services.kms.service_keys import ServiceKey, ServiceKeyring

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ServiceKeys"].full_name


class ServiceKeysServicer(service_keys_pb2_grpc.ServiceKeysServicer):  # type: ignore[misc]
    def __init__(self, keyring: ServiceKeyring, account: str, region: str) -> None:
        self._keyring = keyring
        self._account = account
        self._region = region

    def _check_caller(self, context: grpc.aio.ServicerContext) -> None:
        caller = caller_from_metadata(context.invocation_metadata(), self._account, self._region)
        if caller.principal_type != "AWSService" and not caller.invoked_by:
            raise errors.AccessDeniedException(
                f"{caller.principal_arn or 'The caller'} is not an AWS service: service keys are "
                "used by AWS services only.")

    @staticmethod
    def _key(key: ServiceKey) -> pb.GetServiceKeyResponse:
        return pb.GetServiceKeyResponse(name=key.name, key_id=key.key_id, key_spec=key.spec,
                                        key_usage=key.usage, public_key=key.public_key)

    async def GetServiceKey(
        self, request: pb.GetServiceKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServiceKeyResponse:
        self._check_caller(context)
        return self._key(await self._keyring.get(request.name, request.key_spec, request.key_usage))

    async def SignWithServiceKey(
        self, request: pb.SignWithServiceKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignWithServiceKeyResponse:
        self._check_caller(context)
        signature = await self._keyring.sign(request.name, request.signing_algorithm, request.message)
        return pb.SignWithServiceKeyResponse(signature=signature)

    async def EncryptWithServiceKey(
        self, request: pb.EncryptWithServiceKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.EncryptWithServiceKeyResponse:
        self._check_caller(context)
        ciphertext = await self._keyring.encrypt(request.name, request.plaintext, request.additional_data)
        return pb.EncryptWithServiceKeyResponse(ciphertext=ciphertext)

    async def DecryptWithServiceKey(
        self, request: pb.DecryptWithServiceKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecryptWithServiceKeyResponse:
        self._check_caller(context)
        plaintext = await self._keyring.decrypt(request.name, request.ciphertext, request.additional_data)
        return pb.DecryptWithServiceKeyResponse(plaintext=plaintext)


def register(server: grpc.aio.Server, keyring: ServiceKeyring, account: str, region: str) -> str:
    service_keys_pb2_grpc.add_ServiceKeysServicer_to_server(ServiceKeysServicer(keyring, account, region), server)
    return SERVICE_NAME
