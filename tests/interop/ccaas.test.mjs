// Node.js chaincode as a service (tests/interop/ccaas-basic, fabric-contract-api 2.5) driven by
// the unmodified Fabric Gateway Node client, call for call beside the Python port of the same
// chaincode: every result (payload, or the endorsement error's message) is the same.
//
// Run by tests/interop/test_ccaas_node.py, which starts the network and the chaincode servers
// and sets GATEWAY_* (as for gateway.test.mjs), CCAAS_CONTRACT and PYTHON_CONTRACT.

import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

function env(name) {
    const value = process.env[name];
    if (!value) throw new Error(`environment variable ${name} is not set (run via test_ccaas_node.py)`);
    return value;
}

const UNARY_MS = 20_000;
const deadline = (ms) => () => ({ deadline: Date.now() + ms });
const utf8 = new TextDecoder();

let client;
let gateway;
let node;
let python;

before(() => {
    client = new grpc.Client(env('GATEWAY_ENDPOINT'), grpc.credentials.createSsl(readFileSync(env('GATEWAY_TLS_CA'))), {
        'grpc.ssl_target_name_override': env('GATEWAY_HOST_ALIAS'),
    });
    gateway = connect({
        client,
        identity: { mspId: env('GATEWAY_MSP_ID'), credentials: readFileSync(env('GATEWAY_CERT')) },
        signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(env('GATEWAY_KEY')))),
        hash: hash.sha256,
        evaluateOptions: deadline(UNARY_MS),
        endorseOptions: deadline(UNARY_MS),
        submitOptions: deadline(UNARY_MS),
        commitStatusOptions: deadline(UNARY_MS),
    });
    const network = gateway.getNetwork(env('GATEWAY_CHANNEL'));
    node = network.getContract(env('CCAAS_CONTRACT'));
    python = network.getContract(env('PYTHON_CONTRACT'));
});

after(() => {
    gateway?.close();
    client?.close();
});

/** What a call gives: its payload as text, or the first endorser's error message. */
async function outcome(contract, kind, name, args) {
    try {
        const payload = kind === 'submit'
            ? await contract.submitTransaction(name, ...args)
            : await contract.evaluateTransaction(name, ...args);
        return { ok: utf8.decode(payload) };
    } catch (err) {
        const detail = err.details?.[0]?.message ?? err.message;
        return { error: detail.replace(/^.*chaincode response (\d+), /s, '$1 ') };
    }
}

const CALLS = [
    ['evaluate', 'GetAllAssets', []],
    ['submit', 'InitLedger', []],
    ['evaluate', 'ReadAsset', ['asset1']],
    ['submit', 'CreateAsset', ['asset7', 'teal', '3', 'Ana', '90']],
    ['submit', 'CreateAsset', ['asset7', 'teal', '3', 'Ana', '90']],
    ['submit', 'CreateAsset', ['asset8', 'red', 'seven', 'Ana', '90']],
    ['submit', 'UpdateAsset', ['asset7', 'pink <&>', '4', 'Ana', '95']],
    ['submit', 'TransferAsset', ['asset7', 'Ben']],
    ['evaluate', 'AssetExists', ['asset7']],
    ['evaluate', 'ReadAsset', ['asset7']],
    // a write during an evaluation is simulated and never ordered: nothing is committed
    ['evaluate', 'CreateAsset', ['asset9', 'grey', '1', 'Eve', '1']],
    ['evaluate', 'AssetExists', ['asset9']],
    ['submit', 'DeleteAsset', ['asset2']],
    ['submit', 'DeleteAsset', ['asset2']],
    ['evaluate', 'ReadAsset', ['nope']],
    ['submit', 'TransferAsset', ['nope', 'Ben']],
    ['evaluate', 'GetAllAssets', []],
];

test('the Node.js chaincode as a service answers every call as the Python port does', async () => {
    const seen = [];
    for (const [kind, name, args] of CALLS) {
        const fromNode = await outcome(node, kind, name, args);
        const fromPython = await outcome(python, kind, name, args);
        assert.deepEqual(fromNode, fromPython, `${kind} ${name}(${args.join(', ')})`);
        seen.push({ call: `${kind} ${name}`, ...fromNode });
    }
    // the comparison is not vacuous: calls succeeded and were refused
    assert.ok(seen.filter((s) => 'ok' in s).length >= 10);
    assert.ok(seen.filter((s) => 'error' in s).length >= 4);
    assert.equal(seen.at(-1).ok.split('"ID"').length - 1, 6); // asset1, 3-7 (asset2 deleted)
    console.log(JSON.stringify(seen));
});
