// Fabric's older Node SDK, the unmodified npm `fabric-network` 2.2, with discovery on, against a
// medalliance network: as fabric-samples' older applications (asset-transfer-ledger-queries)
// connect — a connection profile, a wallet identity, `discovery: {enabled: true, asLocalhost: true}`.
//
// Run by tests/interop/test_node_gateway.py, which starts the network and sets:
//   NETWORK_PROFILE (Org1's connection profile, JSON), GATEWAY_MSP_ID, GATEWAY_CERT, GATEWAY_KEY
//   (User1's PEM files), GATEWAY_CHANNEL, GATEWAY_BASIC (asset-transfer-basic).
// No TLS client identity (`clientTlsIdentity`), as fabric-samples' applications connect: the
// ordering nodes' client port asks for no client certificate; consensus has its own cluster
// port with mutual TLS (docs/deployment.md).
// The SDK learns the other organisation's peer and the orderer from discovery only: it endorses
// on both peers (`protos.Endorser`), orders (`AtomicBroadcast`), waits for the commit (`Deliver`).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

const require = createRequire(import.meta.url);
const { Gateway, Wallets } = require('fabric-network');

function env(name) {
    const value = process.env[name];
    if (!value) throw new Error(`environment variable ${name} is not set (run via test_node_gateway.py)`);
    return value;
}

const CHANNEL = env('GATEWAY_CHANNEL');
const BASIC = env('GATEWAY_BASIC');
const MSP_ID = env('GATEWAY_MSP_ID');

let gateway;
let network;
let contract;

before(async () => {
    const wallet = await Wallets.newInMemoryWallet();
    await wallet.put('appUser', {
        credentials: {
            certificate: readFileSync(env('GATEWAY_CERT'), 'utf8'),
            privateKey: readFileSync(env('GATEWAY_KEY'), 'utf8'),
        },
        mspId: MSP_ID,
        type: 'X.509',
    });
    gateway = new Gateway();
    await gateway.connect(JSON.parse(readFileSync(env('NETWORK_PROFILE'), 'utf8')), {
        wallet,
        identity: 'appUser',
        discovery: { enabled: true, asLocalhost: true },
    });
    network = await gateway.getNetwork(CHANNEL);
    contract = network.getContract(BASIC);
});

after(() => gateway?.disconnect());

test('discovery names both organisations\' peers and the orderer', () => {
    const channel = network.getChannel();
    const peerOrgs = new Set(channel.getEndorsers().map((peer) => peer.mspid));
    assert.deepEqual([...peerOrgs].sort(), ['Org1MSP', 'Org2MSP']);
    assert.ok(channel.getCommitters().length >= 1, 'no orderer discovered');
    assert.ok(channel.getMsp('Org2MSP'), 'Org2MSP not in the discovered MSPs');
});

test('a transaction submitted with discovery commits, and a query reads it', async () => {
    const id = `fabric-network-${randomBytes(6).toString('hex')}`;
    await contract.submitTransaction('CreateAsset', id, 'teal', '7', 'Dana', '130');
    const asset = JSON.parse((await contract.evaluateTransaction('ReadAsset', id)).toString());
    assert.equal(asset.ID, id);
    assert.equal(asset.Owner, 'Dana');
    assert.equal(asset.AppraisedValue, 130);
});

test('a query the contract refuses is an error naming the reason', async () => {
    await assert.rejects(
        contract.evaluateTransaction('ReadAsset', `missing-${randomBytes(6).toString('hex')}`),
        /does not exist/,
    );
});
