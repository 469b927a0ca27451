// The AWS SDK for JavaScript v3, unchanged, against the Strongroom gateway.
//
// KMS: CreateKey, DescribeKey, Encrypt / Decrypt with an encryption context (and a wrong
// context refused), GenerateDataKey. S3: CreateBucket, PutObject with SSE-KMS under the new
// key, HeadObject, GetObject (bytes and SSE headers), then clean-up. Prints one JSON summary
// line; exits non-zero on the first mismatch.
//
// Environment: STRONGROOM_ENDPOINT (http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION, E2E_BUCKET (a bucket name the script may create).

import { createHash, randomBytes } from "node:crypto";
import {
  KMSClient, CreateKeyCommand, DescribeKeyCommand, EncryptCommand, DecryptCommand,
  GenerateDataKeyCommand, ScheduleKeyDeletionCommand,
} from "@aws-sdk/client-kms";
import {
  S3Client, CreateBucketCommand, PutObjectCommand, HeadObjectCommand, GetObjectCommand,
  DeleteObjectCommand, DeleteBucketCommand,
} from "@aws-sdk/client-s3";

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(`mismatch: ${message}`);
}

const endpoint = need("STRONGROOM_ENDPOINT");
const region = need("AWS_REGION");
const bucket = need("E2E_BUCKET");
const credentials = {
  accessKeyId: need("AWS_ACCESS_KEY_ID"),
  secretAccessKey: need("AWS_SECRET_ACCESS_KEY"),
};
const kms = new KMSClient({ endpoint, region, credentials, maxAttempts: 1 });
const s3 = new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });

const summary = {};
let keyArn;
let bucketCreated = false;
const objectKey = "js/sdk-v3.bin";

try {
  // --- KMS ---------------------------------------------------------------------------------
  const created = await kms.send(new CreateKeyCommand({ Description: "AWS SDK for JavaScript v3 e2e" }));
  const meta = created.KeyMetadata;
  keyArn = meta.Arn;
  check(/^arn:aws:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/.test(keyArn), `key ARN ${keyArn}`);
  check(meta.KeyState === "Enabled" && meta.Enabled === true, `new key state ${meta.KeyState}`);
  check(meta.KeySpec === "SYMMETRIC_DEFAULT", `key spec ${meta.KeySpec}`);
  check(meta.CreationDate instanceof Date && !isNaN(meta.CreationDate), "CreationDate is a Date");
  const described = await kms.send(new DescribeKeyCommand({ KeyId: meta.KeyId }));
  check(described.KeyMetadata.Arn === keyArn, "DescribeKey returns the same ARN");

  const context = { app: "strongroom-e2e", client: "sdk-js-v3" };
  const plaintext = Buffer.from("hello from the AWS SDK for JavaScript v3");
  const enc = await kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: plaintext, EncryptionContext: context }));
  check(enc.KeyId === keyArn, "Encrypt returns the key ARN");
  check(enc.EncryptionAlgorithm === "SYMMETRIC_DEFAULT", "Encrypt algorithm");
  check(!Buffer.from(enc.CiphertextBlob).includes(plaintext), "ciphertext does not contain the plaintext");
  const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context }));
  check(Buffer.from(dec.Plaintext).equals(plaintext), "Decrypt returns the plaintext");
  check(dec.KeyId === keyArn, "Decrypt names the key");
  summary.kms_round_trip = true;

  let refused = null;
  try {
    await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { app: "other" } }));
  } catch (err) {
    refused = err;
  }
  check(refused !== null, "Decrypt with another encryption context must fail");
  check(refused.name === "InvalidCiphertextException", `wrong-context error ${refused.name}`);
  check(refused.$metadata.httpStatusCode === 400, `wrong-context HTTP ${refused.$metadata.httpStatusCode}`);
  summary.wrong_context_error = refused.name;

  const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: "AES_256" }));
  check(dk.Plaintext.length === 32, `data key length ${dk.Plaintext.length}`);
  const dk2 = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob }));
  check(Buffer.from(dk2.Plaintext).equals(Buffer.from(dk.Plaintext)), "data key decrypts to itself");
  summary.data_key = true;

  // --- S3 with SSE-KMS ---------------------------------------------------------------------
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  bucketCreated = true;
  const body = randomBytes(256 * 1024 + 3);
  const put = await s3.send(new PutObjectCommand({
    Bucket: bucket, Key: objectKey, Body: body, ContentType: "application/octet-stream",
    ServerSideEncryption: "aws:kms", SSEKMSKeyId: meta.KeyId,
  }));
  check(put.ServerSideEncryption === "aws:kms", `PutObject SSE ${put.ServerSideEncryption}`);
  check(put.SSEKMSKeyId === keyArn, `PutObject key ${put.SSEKMSKeyId}`);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }));
  check(head.ContentLength === body.length, `HeadObject length ${head.ContentLength}`);
  check(head.SSEKMSKeyId === keyArn, "HeadObject names the key");
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }));
  const bytes = Buffer.from(await got.Body.transformToByteArray());
  check(bytes.equals(body), "GetObject returns the uploaded bytes");
  check(got.ServerSideEncryption === "aws:kms" && got.SSEKMSKeyId === keyArn, "GetObject SSE headers");
  summary.s3_sse_kms = {
    bytes: bytes.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    key: got.SSEKMSKeyId,
  };
} finally {
  if (bucketCreated) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey })).catch(() => {});
    await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  }
  if (keyArn) {
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyArn, PendingWindowInDays: 7 })).catch(() => {});
  }
}

summary.key_arn = keyArn;
console.log(JSON.stringify(summary));
