"""An S3 bucket (AWS or any S3-compatible endpoint) as a backup target (boto3).

A file is one object. Writes stream as a multipart upload, made visible only by
CompleteMultipartUpload — the atomic finish S3 offers; an aborted write aborts the upload,
leaving nothing. S3 takes at most 10,000 parts of at most 5 GiB, and the size of what is
written is not known in advance, so parts grow with the object (:func:`part_size_of`): the
first :data:`GROW_EVERY` parts are ``part_size``, each next run of them twice as large, which
lets a stream reach S3's 5 TiB object limit from 16 MiB parts. A part waits in memory up to
:data:`SPOOL_IN_MEMORY`, on local disk (the system's temporary directory) beyond.
Credentials (access key id and secret) come from the secret store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ceso.backup.targets.base import Target, TargetReader, TargetWriter, check_key
from ceso.errors import AuthenticationError, CesoError, HostUnreachableError, NotFoundError, OperationError

__all__ = ["S3Target"]

PART_SIZE = 16 << 20  # the first parts; S3 needs >= 5 MiB (all but the last)
MAX_PART = 5 << 30  # S3's largest part
MAX_PARTS = 10_000
GROW_EVERY = 1000  # parts of one size before the size doubles
SPOOL_IN_MEMORY = 64 << 20  # a larger part waits on disk


def part_size_of(number: int, first: int = PART_SIZE, grow_every: int = GROW_EVERY) -> int:
    """The size of part ``number`` (from 1): ``first`` doubled once per ``grow_every`` parts, at most 5 GiB."""
    return min(first << ((number - 1) // grow_every), MAX_PART)


class _Writer:
    def __init__(self, target: S3Target, key: str) -> None:
        self._target = target
        self._key = key
        self._buf: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by commit/abort
        self._held = 0
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None

    def _next_size(self) -> int:
        return part_size_of(len(self._parts) + 1, self._target.part_size, self._target.grow_every)

    def _flush_part(self) -> None:
        t = self._target
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise OperationError(f"target {t.name}: {self._key} needs more than S3's {MAX_PARTS} parts")
        self._buf.seek(0)
        with t._errors(f"upload {self._key}"):
            if self._upload_id is None:
                self._upload_id = t._s3.create_multipart_upload(Bucket=t.bucket, Key=self._key)["UploadId"]
            reply = t._s3.upload_part(
                Bucket=t.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=self._buf,
                ContentLength=self._held,
            )
        self._parts.append({"PartNumber": number, "ETag": reply["ETag"]})
        self._buf.seek(0)
        self._buf.truncate()
        self._held = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            room = self._next_size() - self._held
            self._buf.write(view[:room])
            self._held += min(room, len(view))
            view = view[room:]
            if self._held >= self._next_size():
                self._flush_part()

    def commit(self) -> int:
        t = self._target
        try:
            if self._upload_id is None:  # small file: one PUT is atomic too
                self._buf.seek(0)
                with t._errors(f"upload {self._key}"):
                    t._s3.put_object(Bucket=t.bucket, Key=self._key, Body=self._buf.read())
            else:
                if self._held:
                    self._flush_part()
                with t._errors(f"finish {self._key}"):
                    t._s3.complete_multipart_upload(
                        Bucket=t.bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
        except BaseException:
            self.abort()
            raise
        self._buf.close()
        size = t._head(self._key)
        if size is None:
            raise OperationError(f"target {t.name}: {self._key} is missing right after its upload")
        return size

    def abort(self) -> None:
        self._buf.close()
        self._held = 0
        if self._upload_id is not None:
            t = self._target
            # Best effort by contract; a bucket lifecycle rule reaps uploads that stay behind.
            with suppress(Exception):
                t._s3.abort_multipart_upload(Bucket=t.bucket, Key=self._key, UploadId=self._upload_id)
            self._upload_id = None


class _Reader:
    def __init__(self, body: Any, target: S3Target, key: str) -> None:
        self._body = body
        self._target = target
        self._key = key

    def read(self, n: int = -1, /) -> bytes:
        with self._target._errors(f"read {self._key}"):
            data: bytes = self._body.read(n if n >= 0 else None)
            return data

    def close(self) -> None:
        self._body.close()


class S3Target(Target):
    """Objects ``<prefix>/<key>`` in ``bucket``."""

    type = "s3"

    def __init__(
        self,
        name: str,
        *,
        bucket: str,
        prefix: str,
        endpoint: str | None,
        region: str | None,
        credentials: dict[str, str],
        part_size: int = PART_SIZE,
        grow_every: int = GROW_EVERY,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(name)
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.part_size = part_size  # the first parts' size (see part_size_of)
        self.grow_every = grow_every
        self._s3: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or "us-east-1",
            aws_access_key_id=credentials.get("access_key_id"),
            aws_secret_access_key=credentials.get("secret_access_key"),
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 5}),
        )

    def __repr__(self) -> str:
        return f"S3Target({self.name!r}, s3://{self.bucket}/{self.prefix})"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            yield
        except CesoError:
            raise
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            message = f"target {self.name}: cannot {action}: {code or exc}"
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise NotFoundError(message) from exc
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                raise AuthenticationError(message) from exc
            raise OperationError(message, code="target_io") from exc
        except EndpointConnectionError as exc:
            raise HostUnreachableError(f"target {self.name}: cannot {action}: {exc}") from exc
        except BotoCoreError as exc:
            raise OperationError(f"target {self.name}: cannot {action}: {exc}", code="target_io") from exc

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _head(self, full_key: str) -> int | None:
        from botocore.exceptions import ClientError

        with self._errors(f"stat {full_key}"):
            try:
                return int(self._s3.head_object(Bucket=self.bucket, Key=full_key)["ContentLength"])
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

    def open_write(self, key: str) -> TargetWriter:
        return _Writer(self, self._key(key))

    def open_read(self, key: str) -> TargetReader:
        full = self._key(key)
        with self._errors(f"read {key}"):
            return _Reader(self._s3.get_object(Bucket=self.bucket, Key=full)["Body"], self, full)

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._errors(f"list {prefix or '/'}"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            )
            for page in pages:
                keys.extend(obj["Key"][len(base) :] for obj in page.get("Contents", []))
        return sorted(keys)

    def size(self, key: str) -> int | None:
        return self._head(self._key(key))

    def delete(self, key: str) -> None:
        with self._errors(f"delete {key}"):
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    def check(self) -> dict[str, Any]:
        facts = super().check()
        return {**facts, "url": f"s3://{self.bucket}/{self.prefix}", "endpoint": self.endpoint}

    def close(self) -> None:
        self._s3.close()
