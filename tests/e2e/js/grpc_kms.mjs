// A JavaScript gRPC client of the KMS service, built only from protos/ (no generated code):
// the gRPC API is language-neutral.
//
// Loads protos/strongroom/kms/v1/kms.proto with @grpc/proto-loader and calls CreateKey,
// DescribeKey, Encrypt and Decrypt on the KMS service's own port (no gateway, no SigV4: a
// direct gRPC caller that sends no caller metadata acts as the account root). Errors are
// decoded from the `grpc-status-details-bin` trailer with the standard google.rpc protos
// (google.rpc.Status carrying one google.rpc.ErrorInfo). Prints one JSON summary line; exits
// non-zero on the first mismatch.
//
// Environment: STRONGROOM_KMS_TARGET (127.0.0.1:PORT), STRONGROOM_PROTOS (the repo's protos/),
// GOOGLEAPIS_PROTOS (a folder holding google/rpc/status.proto and error_details.proto).

import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(`mismatch: ${message}`);
}

const target = need("STRONGROOM_KMS_TARGET");
const protosDir = need("STRONGROOM_PROTOS");
const googleapisDir = need("GOOGLEAPIS_PROTOS");

const definition = protoLoader.loadSync("strongroom/kms/v1/kms.proto", {
  includeDirs: [protosDir],
  keepCase: true,     // field names as written in the .proto (key_id, ciphertext_blob, ...)
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const pkg = grpc.loadPackageDefinition(definition);
const Kms = pkg.strongroom.kms.v1.KeyManagementService;
check(typeof Kms === "function", "strongroom.kms.v1.KeyManagementService is in the proto");
const client = new Kms(target, grpc.credentials.createInsecure());

// The standard google.rpc error model, from the googleapis protos.
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (_origin, target) => path.join(googleapisDir, target);
rpcRoot.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = rpcRoot.lookupType("google.rpc.Status");
const ErrorInfo = rpcRoot.lookupType("google.rpc.ErrorInfo");

function call(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 20000 }, (err, response) =>
      (err ? reject(err) : resolve(response)));
  });
}

function decodeError(err) {
  const raw = err.metadata && err.metadata.get("grpc-status-details-bin");
  check(raw && raw.length === 1, "error carries grpc-status-details-bin");
  const status = Status.decode(raw[0]);
  check(status.code === err.code, `Status.code ${status.code} equals the gRPC code ${err.code}`);
  check(status.details.length === 1, `exactly one detail, got ${status.details.length}`);
  const detail = status.details[0];
  check(detail.type_url === "type.googleapis.com/google.rpc.ErrorInfo" ||
        detail.typeUrl === "type.googleapis.com/google.rpc.ErrorInfo", "the detail is an ErrorInfo");
  const info = ErrorInfo.decode(detail.value);
  return {
    grpc_code: grpc.status[err.code],
    message: status.message,
    reason: info.reason,
    domain: info.domain,
    metadata: { ...info.metadata },
  };
}

async function expectError(method, request) {
  try {
    await call(method, request);
  } catch (err) {
    return decodeError(err);
  }
  throw new Error(`mismatch: ${method} was expected to fail`);
}

const summary = {};
let keyId;
try {
  const created = await call("CreateKey", { description: "gRPC from JavaScript" });
  const meta = created.key_metadata;
  keyId = meta.key_id;
  check(/^[0-9a-f-]{36}$/.test(keyId), `key id ${keyId}`);
  check(meta.arn.endsWith(`:key/${keyId}`), `ARN ${meta.arn}`);
  check(meta.key_state === "Enabled" && meta.enabled === true, `state ${meta.key_state}`);
  check(meta.creation_date && Number(meta.creation_date.seconds) > 1600000000, "creation_date is a Timestamp");
  summary.key_arn = meta.arn;

  const described = await call("DescribeKey", { key_id: meta.arn });
  check(described.key_metadata.key_id === keyId, "DescribeKey by ARN");

  const plaintext = Buffer.from("hello from @grpc/grpc-js");
  const context = { via: "grpc-js" };
  const enc = await call("Encrypt", { key_id: keyId, plaintext, encryption_context: context });
  check(Buffer.isBuffer(enc.ciphertext_blob) && enc.ciphertext_blob.length > plaintext.length, "ciphertext bytes");
  check(enc.key_id === meta.arn, "Encrypt names the key ARN");
  const dec = await call("Decrypt", { ciphertext_blob: enc.ciphertext_blob, encryption_context: context });
  check(Buffer.from(dec.plaintext).equals(plaintext), "Decrypt returns the plaintext");
  check(dec.key_id === meta.arn, "Decrypt names the key ARN");
  summary.round_trip = true;

  summary.wrong_context = await expectError("Decrypt", {
    ciphertext_blob: enc.ciphertext_blob, encryption_context: { via: "somewhere else" } });
  summary.not_found = await expectError("DescribeKey", { key_id: "11111111-2222-3333-4444-555555555555" });
  summary.validation = await expectError("Encrypt", { key_id: keyId, plaintext: Buffer.alloc(0) });
} finally {
  if (keyId) {
    await call("ScheduleKeyDeletion", { key_id: keyId, pending_window_in_days: 7 }).catch(() => {});
  }
  client.close();
}

console.log(JSON.stringify(summary));
