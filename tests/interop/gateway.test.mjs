// The unmodified Hyperledger Fabric Gateway Node client against a medalliance network.
//
// Run by tests/interop/test_node_gateway.py, which starts the network and sets:
//   GATEWAY_ENDPOINT (host:port of Org1's peer), GATEWAY_HOST_ALIAS (its TLS host name),
//   GATEWAY_PEER_ADDRESS (that peer's host:port as the network config names it),
//   GATEWAY_TLS_CA, GATEWAY_MSP_ID, GATEWAY_CERT, GATEWAY_KEY (User1's PEM files),
//   GATEWAY_CHANNEL, GATEWAY_BASIC (asset-transfer-basic), GATEWAY_INTEROP (tests/interop/contract.py).
// The tests run in file order and share one ledger: `basic` is initialised by the first one.

import * as grpc from '@grpc/grpc-js';
import {
    CommitError,
    EndorseError,
    GatewayError,
    StatusCode,
    checkpointers,
    connect,
    hash,
    signers,
} from '@hyperledger/fabric-gateway';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

function env(name) {
    const value = process.env[name];
    if (!value) throw new Error(`environment variable ${name} is not set (run via test_node_gateway.py)`);
    return value;
}

const CHANNEL = env('GATEWAY_CHANNEL');
const BASIC = env('GATEWAY_BASIC');
const INTEROP = env('GATEWAY_INTEROP');
const UNARY_MS = 15_000;
const STREAM_MS = 60_000;
const EVENT_WAIT_MS = 20_000;

const utf8 = new TextDecoder();
const text = (bytes) => utf8.decode(bytes);
const deadline = (ms) => () => ({ deadline: Date.now() + ms });
const unique = (prefix) => `${prefix}-${randomBytes(6).toString('hex')}`;

let client;
let gateway;
let network;
let basic;
let interop;

before(() => {
    const tlsCa = readFileSync(env('GATEWAY_TLS_CA'));
    client = new grpc.Client(env('GATEWAY_ENDPOINT'), grpc.credentials.createSsl(tlsCa), {
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
        chaincodeEventsOptions: deadline(STREAM_MS),
        blockEventsOptions: deadline(STREAM_MS),
        filteredBlockEventsOptions: deadline(STREAM_MS),
        blockAndPrivateDataEventsOptions: deadline(STREAM_MS),
    });
    network = gateway.getNetwork(CHANNEL);
    basic = network.getContract(BASIC);
    interop = network.getContract(INTEROP);
});

after(() => {
    gateway?.close();
    client?.close();
});

/** The next value of an event iterator, failing if none arrives within `ms`. */
async function nextWithin(iterator, ms = EVENT_WAIT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
    });
    try {
        const { value, done } = await Promise.race([iterator.next(), timeout]);
        assert.equal(done, false, 'the event stream ended');
        return value;
    } finally {
        clearTimeout(timer);
    }
}

/** Read events from `events` (a CloseableAsyncIterable) one by one, closing it afterwards. */
async function take(events, count) {
    const iterator = events[Symbol.asyncIterator]();
    const seen = [];
    try {
        while (seen.length < count) seen.push(await nextWithin(iterator));
    } finally {
        events.close();
    }
    return seen;
}

async function rejection(promise) {
    try {
        await promise;
    } catch (err) {
        return err;
    }
    assert.fail('expected the call to fail');
}

const ASSET1 = '{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}';

test('TLS connection: InitLedger, ReadAsset, GetAllAssets', async () => {
    await basic.submitTransaction('InitLedger');
    assert.equal(text(await basic.evaluateTransaction('ReadAsset', 'asset1')), ASSET1);
    const assets = JSON.parse(text(await basic.evaluateTransaction('GetAllAssets')));
    assert.equal(assets.length, 6);
    assert.deepEqual(
        assets.map((a) => a.ID),
        ['asset1', 'asset2', 'asset3', 'asset4', 'asset5', 'asset6'],
    );
});

test('submitAsync: the result before commit, then a successful status', async () => {
    const submitted = await basic.submitAsync('TransferAsset', { arguments: ['asset2', 'Ana'] });
    assert.equal(text(submitted.getResult()), 'Brad');
    const status = await submitted.getStatus();
    assert.equal(status.successful, true);
    assert.equal(status.code, StatusCode.VALID);
    assert.equal(status.transactionId, submitted.getTransactionId());
    assert.equal(typeof status.blockNumber, 'bigint');
    assert.ok(status.blockNumber > 0n);
    const asset = JSON.parse(text(await basic.evaluateTransaction('ReadAsset', 'asset2')));
    assert.equal(asset.Owner, 'Ana');
});

test('endorsement failure: one detail, from the gateway\'s own peer, as Fabric endorses there first', async () => {
    const err = await rejection(
        basic.submitTransaction('UpdateAsset', 'missing-asset', 'red', '1', 'Nobody', '1'),
    );
    assert.ok(err instanceof EndorseError, `expected EndorseError, got ${err}`);
    assert.equal(err.code, grpc.status.ABORTED, err.message);
    assert.match(err.message, /failed to endorse transaction, see attached details for more info/);
    assert.match(err.transactionId, /^[0-9a-f]{64}$/);
    assert.equal(err.details.length, 1, JSON.stringify(err.details));
    const [detail] = err.details;
    assert.equal(detail.mspId, env('GATEWAY_MSP_ID'));
    assert.equal(detail.address, env('GATEWAY_PEER_ADDRESS'));
    assert.equal(detail.message, 'chaincode response 500, the asset missing-asset does not exist');
});

test('endorsement failure of a contract that needs both organisations: still one detail', async () => {
    const err = await rejection(interop.submitTransaction('PutSecret', unique('no-secret')));
    assert.ok(err instanceof EndorseError, `expected EndorseError, got ${err}`);
    assert.equal(err.code, grpc.status.ABORTED, err.message);
    assert.match(err.message, /failed to endorse transaction, see attached details for more info/);
    assert.deepEqual(
        err.details.map((d) => [d.address, d.mspId]),
        [[env('GATEWAY_PEER_ADDRESS'), env('GATEWAY_MSP_ID')]],
    );
    assert.equal(
        err.details[0].message,
        'chaincode response 400, the transient field "secret" is required',
    );
});

test('evaluate failure: GatewayError UNKNOWN with a detail', async () => {
    const err = await rejection(basic.evaluateTransaction('ReadAsset', 'missing-asset'));
    assert.ok(err instanceof GatewayError, `expected GatewayError, got ${err}`);
    assert.equal(err.code, grpc.status.UNKNOWN, err.message);
    assert.equal(err.details.length, 1);
    assert.match(err.details[0].message, /does not exist/);
    // evaluated on the gateway's own peer, as Fabric's gateway prefers its own organisation
    assert.equal(err.details[0].mspId, env('GATEWAY_MSP_ID'));
    assert.equal(err.details[0].address, env('GATEWAY_PEER_ADDRESS'));
});

let mvccBlock;
let mvccLoser;
let mvccWinner;

test('MVCC conflict: two transactions endorsed on the same state, one VALID, one code 11', async () => {
    const update = (owner) =>
        basic.newProposal('UpdateAsset', { arguments: ['asset3', 'green', '10', owner, '500'] });
    const a = await update('A').endorse();
    const b = await update('B').endorse();
    const [submittedA, submittedB] = await Promise.all([a.submit(), b.submit()]);
    const statuses = await Promise.all([submittedA.getStatus(), submittedB.getStatus()]);
    const codes = statuses.map((s) => s.code).sort((x, y) => x - y);
    assert.deepEqual(codes, [StatusCode.VALID, StatusCode.MVCC_READ_CONFLICT]);
    const loser = statuses.find((s) => !s.successful);
    assert.ok(loser.blockNumber > 0n);
    mvccBlock = loser.blockNumber;
    mvccLoser = loser.transactionId;
    const winner = statuses.find((s) => s.successful);
    mvccWinner = winner;
    const owner = winner.transactionId === a.getTransactionId() ? 'A' : 'B';
    const asset = JSON.parse(text(await basic.evaluateTransaction('ReadAsset', 'asset3')));
    assert.equal(asset.Owner, owner);
});

test('MVCC conflict after commit: a stale transaction submitted later gets code 11', async () => {
    const update = (owner) =>
        basic.newProposal('UpdateAsset', { arguments: ['asset4', 'yellow', '10', owner, '600'] });
    const a = await update('A').endorse();
    const b = await update('B').endorse();
    const statusA = await (await a.submit()).getStatus();
    assert.equal(statusA.code, StatusCode.VALID);
    const statusB = await (await b.submit()).getStatus();
    assert.equal(statusB.code, StatusCode.MVCC_READ_CONFLICT);
    assert.equal(statusB.successful, false);
    assert.ok(statusB.blockNumber > statusA.blockNumber);
});

test('MVCC conflict through submitTransaction: CommitError code 11', async () => {
    // Concurrent submitTransaction calls on one asset endorse on the same state, so all but
    // one fail at commit. Retry in the unlikely case a commit lands between endorsements.
    for (let attempt = 1; ; attempt++) {
        const outcomes = await Promise.allSettled(
            ['X', 'Y', 'Z'].map((owner) =>
                basic.submitTransaction('UpdateAsset', 'asset5', 'black', '15', owner, '700'),
            ),
        );
        const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason);
        for (const err of failures) {
            assert.ok(err instanceof CommitError, `expected CommitError, got ${err}`);
            assert.equal(err.code, StatusCode.MVCC_READ_CONFLICT);
            assert.match(err.transactionId, /^[0-9a-f]{64}$/);
        }
        assert.ok(outcomes.some((o) => o.status === 'fulfilled'), 'every transaction failed');
        if (failures.length > 0) return;
        assert.ok(attempt < 5, 'never saw a conflict in 5 attempts');
    }
});

test('transient data: the secret reaches the contract but not the block', async () => {
    const secret = `s3cr3t:${randomBytes(16).toString('hex')}`;
    const expected = createHash('sha256').update(secret).digest('hex');
    const key = unique('hashed');
    const submitted = await interop.submitAsync('PutSecret', {
        arguments: [key],
        transientData: { secret },
    });
    assert.equal(text(submitted.getResult()), expected);
    const status = await submitted.getStatus();
    assert.equal(status.code, StatusCode.VALID);
    assert.equal(text(await interop.evaluateTransaction('Get', key)), expected);

    const [block] = await take(await network.getBlockEvents({ startBlock: status.blockNumber }), 1);
    assert.equal(BigInt(block.getHeader().getNumber()), status.blockNumber);
    const serialized = Buffer.from(block.serializeBinary());
    assert.ok(serialized.includes(Buffer.from(expected)), 'the hash should be in the block');
    assert.ok(!serialized.includes(Buffer.from(secret)), 'the secret leaked into the block');
    assert.ok(!serialized.includes(Buffer.from('s3cr3t:')), 'part of the secret leaked');
});

test('chaincode events: in order, and resumed from an in-memory checkpoint', async () => {
    const keys = [unique('first'), unique('second')];
    const statuses = [];
    for (const key of keys) {
        const submitted = await interop.submitAsync('Put', { arguments: [key, `value of ${key}`] });
        statuses.push(await submitted.getStatus());
    }
    assert.ok(statuses.every((s) => s.successful));
    const startBlock = statuses[0].blockNumber;

    const events = await take(await network.getChaincodeEvents(INTEROP, { startBlock }), 2);
    events.forEach((event, i) => {
        assert.equal(event.eventName, 'Put');
        assert.equal(event.chaincodeName, INTEROP);
        assert.equal(text(event.payload), keys[i]);
        assert.equal(event.transactionId, statuses[i].transactionId);
        assert.equal(event.blockNumber, statuses[i].blockNumber);
    });

    const checkpointer = checkpointers.inMemory();
    const [first] = await take(await network.getChaincodeEvents(INTEROP, { startBlock }), 1);
    assert.equal(text(first.payload), keys[0]);
    await checkpointer.checkpointChaincodeEvent(first);
    assert.equal(checkpointer.getBlockNumber(), statuses[0].blockNumber);
    assert.equal(checkpointer.getTransactionId(), statuses[0].transactionId);

    const [next] = await take(
        await network.getChaincodeEvents(INTEROP, { checkpoint: checkpointer }),
        1,
    );
    assert.equal(text(next.payload), keys[1]);
    assert.equal(next.transactionId, statuses[1].transactionId);
});

test('chaincode events: a checkpoint inside a block skips only the events up to it', async (t) => {
    // Two Puts submitted together usually share a block; the checkpoint then points inside it.
    const keys = [unique('same-a'), unique('same-b')];
    const submitted = await Promise.all(
        keys.map((key) => interop.submitAsync('Put', { arguments: [key, 'v'] })),
    );
    const statuses = await Promise.all(submitted.map((s) => s.getStatus()));
    assert.ok(statuses.every((s) => s.successful));
    const startBlock = statuses.map((s) => s.blockNumber).reduce((x, y) => (x < y ? x : y));
    if (statuses[0].blockNumber !== statuses[1].blockNumber) {
        t.diagnostic('the two Puts were committed in different blocks');
    }

    const events = await take(await network.getChaincodeEvents(INTEROP, { startBlock }), 2);
    assert.deepEqual(events.map((e) => text(e.payload)).sort(), [...keys].sort());

    const checkpointer = checkpointers.inMemory();
    await checkpointer.checkpointChaincodeEvent(events[0]);
    const [next] = await take(
        await network.getChaincodeEvents(INTEROP, { checkpoint: checkpointer }),
        1,
    );
    assert.equal(next.transactionId, events[1].transactionId);
});

test('block events: from block 0 in order', async () => {
    const blocks = await take(await network.getBlockEvents({ startBlock: 0n }), 3);
    assert.deepEqual(
        blocks.map((b) => BigInt(b.getHeader().getNumber())),
        [0n, 1n, 2n],
    );
    // Each block's previous_hash links to the one before it: non-empty after the genesis block.
    assert.equal(blocks[1].getHeader().getPreviousHash_asU8().length, 32);
    assert.ok(blocks[0].getData().getDataList().length >= 1);
});

test('filtered block events: transaction ids and validation codes', async () => {
    assert.ok(mvccBlock !== undefined, 'runs after the MVCC test');
    const [filtered] = await take(await network.getFilteredBlockEvents({ startBlock: mvccBlock }), 1);
    assert.equal(BigInt(filtered.getNumber()), mvccBlock);
    assert.equal(filtered.getChannelId(), CHANNEL);
    const txs = filtered.getFilteredTransactionsList();
    const codes = new Map(txs.map((tx) => [tx.getTxid(), tx.getTxValidationCode()]));
    assert.equal(codes.get(mvccLoser), StatusCode.MVCC_READ_CONFLICT);
    if (mvccWinner.blockNumber === mvccBlock) {
        assert.equal(codes.get(mvccWinner.transactionId), StatusCode.VALID);
    }
    for (const tx of txs) {
        assert.match(tx.getTxid(), /^[0-9a-f]{64}$/);
        assert.equal(tx.getType(), 3); // ENDORSER_TRANSACTION
    }

    // A block of the interop contract lists its event, without the payload.
    const key = unique('filtered');
    const status = await (await interop.submitAsync('Put', { arguments: [key, 'v'] })).getStatus();
    const [withEvent] = await take(
        await network.getFilteredBlockEvents({ startBlock: status.blockNumber }),
        1,
    );
    const tx = withEvent.getFilteredTransactionsList().find((t) => t.getTxid() === status.transactionId);
    assert.ok(tx, 'the transaction is in its block');
    assert.equal(tx.getTxValidationCode(), StatusCode.VALID);
    const [action] = tx.getTransactionActions().getChaincodeActionsList();
    const event = action.getChaincodeEvent();
    assert.equal(event.getEventName(), 'Put');
    assert.equal(event.getChaincodeId(), INTEROP);
    assert.equal(event.getTxId(), status.transactionId);
    assert.equal(event.getPayload_asU8().length, 0);
});
