// fabric-samples' asset-transfer-private-data application-gateway-typescript, its call sequence
// and expectations unchanged, with the unmodified `@hyperledger/fabric-gateway` client against
// medalliance peers of two organisations running the Python port of the chaincode.
//
// Run by tests/interop/test_private_data_app.py, which starts the network and sets, per
// organisation N in 1 and 2: PDC_ENDPOINT_N, PDC_HOST_ALIAS_N, PDC_TLS_CA_N, PDC_MSP_ID_N,
// PDC_CERT_N, PDC_KEY_N; and PDC_CHANNEL, PDC_CHAINCODE, PDC_OUT (a JSON file this test
// writes: the asset IDs it used, so the driver can scan the peers' files).

import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

function env(name) {
    const value = process.env[name];
    if (!value) throw new Error(`environment variable ${name} is not set (run via test_private_data_app.py)`);
    return value;
}

const utf8 = new TextDecoder();
const UNARY_MS = 20_000;
const deadline = () => ({ deadline: Date.now() + UNARY_MS });
const org1Collection = 'Org1MSPPrivateCollection';
const org2Collection = 'Org2MSPPrivateCollection';
const now = Date.now();
const assetID1 = `asset${String(now)}`;
const assetID2 = `asset${String(now + 1)}`;

const opened = [];

function gatewayOf(n) {
    const client = new grpc.Client(env(`PDC_ENDPOINT_${n}`), grpc.credentials.createSsl(readFileSync(env(`PDC_TLS_CA_${n}`))), {
        'grpc.ssl_target_name_override': env(`PDC_HOST_ALIAS_${n}`),
    });
    const gateway = connect({
        client,
        identity: { mspId: env(`PDC_MSP_ID_${n}`), credentials: readFileSync(env(`PDC_CERT_${n}`)) },
        signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(env(`PDC_KEY_${n}`)))),
        hash: hash.sha256,
        evaluateOptions: deadline,
        endorseOptions: deadline,
        submitOptions: deadline,
        commitStatusOptions: deadline,
    });
    opened.push(gateway, client);
    const network = gateway.getNetwork(env('PDC_CHANNEL'));
    networks.push(network);
    return network.getContract(env('PDC_CHAINCODE'));
}

const networks = [];
let contractOrg1;
let contractOrg2;

before(() => {
    contractOrg1 = gatewayOf(1);
    contractOrg2 = gatewayOf(2);
    writeFileSync(env('PDC_OUT'), JSON.stringify({ assetID1, assetID2 }));
});

after(() => {
    for (const closeable of opened) closeable.close();
});

const json = (bytes) => JSON.parse(utf8.decode(bytes));

/**
 * The one addition to the sample: the gateway reports a commit once its own peer committed, and
 * the next call reads through the other organisation's peer; wait until that peer has delivered
 * the block (Fabric's sample relies on peers committing within milliseconds of each other).
 */
async function submitSeenBy(contract, name, options, reader) {
    const commit = await contract.submitAsync(name, options);
    const status = await commit.getStatus();
    assert.equal(status.successful, true, `${name} committed as ${status.code}`);
    const events = await reader.getBlockEvents({ startBlock: status.blockNumber, deadline: Date.now() + UNARY_MS });
    try {
        for await (const block of events) {
            assert.equal(BigInt(block.getHeader().getNumber()), status.blockNumber);
            return;
        }
    } finally {
        events.close();
    }
}

async function readAssetPrivateDetails(contract, assetID, collection) {
    const resultJson = utf8.decode(await contract.evaluateTransaction('ReadAssetPrivateDetails', collection, assetID));
    return resultJson ? JSON.parse(resultJson) : undefined;
}

test('the sample application: create, range, refused transfer, agree, transfer, delete, purge', async () => {
    // As Org1: create two assets, their appraised values in Org1's collection.
    await contractOrg1.submit('CreateAsset', {
        transientData: { asset_properties: JSON.stringify({ objectType: 'ValuableAsset', assetID: assetID1, color: 'green', size: 20, appraisedValue: 100 }) },
    });
    await submitSeenBy(contractOrg1, 'CreateAsset', {
        transientData: { asset_properties: JSON.stringify({ objectType: 'ValuableAsset', assetID: assetID2, color: 'blue', size: 35, appraisedValue: 727 }) },
    }, networks[1]);
    const range = json(await contractOrg1.evaluateTransaction('GetAssetByRange', assetID1, `asset${String(now + 2)}`));
    assert.deepEqual(range.map((a) => a.assetID), [assetID1, assetID2]);

    // Transfer before Org2 agreed: refused.
    await assert.rejects(
        contractOrg1.submit('TransferAsset', { transientData: { asset_owner: JSON.stringify({ assetID: assetID1, buyerMSP: 'Org2MSP' }) } }),
    );

    // As Org2: read the shared part, agree to the value.
    const asset = json(await contractOrg2.evaluateTransaction('ReadAsset', assetID1));
    assert.equal(asset.assetID, assetID1);
    assert.match(asset.owner, /^x509::CN=User1@org1\.example\.com/);
    await submitSeenBy(contractOrg2, 'AgreeToTransfer', {
        transientData: { asset_value: JSON.stringify({ assetID: assetID1, appraisedValue: 100 }) },
    }, networks[0]);

    // As Org1: read the agreement, transfer.
    const agreement = json(await contractOrg1.evaluateTransaction('ReadTransferAgreement', assetID1));
    assert.match(agreement.buyerID, /^x509::CN=User1@org2\.example\.com/);
    await submitSeenBy(contractOrg1, 'TransferAsset', {
        transientData: { asset_owner: JSON.stringify({ assetID: assetID1, buyerMSP: 'Org2MSP' }) },
    }, networks[1]);
    const transferred = json(await contractOrg1.evaluateTransaction('ReadAsset', assetID1));
    assert.equal(transferred.owner, agreement.buyerID);
    assert.equal(await readAssetPrivateDetails(contractOrg1, assetID1, org1Collection), undefined);

    // As Org2: its collection holds the value; it may not delete Org1's asset.
    assert.deepEqual(await readAssetPrivateDetails(contractOrg2, assetID1, org2Collection), { assetID: assetID1, appraisedValue: 100 });
    await assert.rejects(
        contractOrg2.submit('DeleteAsset', { transientData: { asset_delete: JSON.stringify({ assetID: assetID2 }) } }),
    );

    // As Org1: delete and purge asset2.
    await contractOrg1.submit('DeleteAsset', { transientData: { asset_delete: JSON.stringify({ assetID: assetID2 }) } });
    await contractOrg1.submit('PurgeAsset', { transientData: { asset_purge: JSON.stringify({ assetID: assetID2 }) } });
    assert.equal(utf8.decode(await contractOrg1.evaluateTransaction('ReadAsset', assetID2)), '');
});

test("each organisation reads only its own collection", async () => {
    const asset = `asset${String(now + 10)}`;
    await contractOrg1.submit('CreateAsset', {
        transientData: { asset_properties: JSON.stringify({ objectType: 'ValuableAsset', assetID: asset, color: 'red', size: 1, appraisedValue: 4242 }) },
    });
    assert.deepEqual(await readAssetPrivateDetails(contractOrg1, asset, org1Collection), { assetID: asset, appraisedValue: 4242 });
    await assert.rejects(contractOrg2.evaluateTransaction('ReadAssetPrivateDetails', org1Collection, asset));
    writeFileSync(env('PDC_OUT'), JSON.stringify({ assetID1, assetID2, org1Only: asset }));
});

/** The collection names of the private data delivered with block `number` to `network`'s client. */
async function deliveredCollections(network, number) {
    const events = await network.getBlockAndPrivateDataEvents({ startBlock: number, deadline: Date.now() + UNARY_MS });
    try {
        for await (const event of events) {
            const names = [];
            event.getPrivateDataMapMap().forEach((pvt) => {
                for (const ns of pvt.getNsPvtRwsetList()) {
                    for (const coll of ns.getCollectionPvtRwsetList()) names.push(coll.getCollectionName());
                }
            });
            return names.sort();
        }
    } finally {
        events.close();
    }
    throw new Error('no block delivered');
}

test('DeliverWithPrivateData: each organisation gets the private data of its collections only', async () => {
    const asset = `asset${String(now + 20)}`;
    const commit = await contractOrg1.submitAsync('CreateAsset', {
        transientData: { asset_properties: JSON.stringify({ objectType: 'ValuableAsset', assetID: asset, color: 'teal', size: 2, appraisedValue: 5 }) },
    });
    const status = await commit.getStatus();
    assert.equal(status.successful, true);
    assert.deepEqual(await deliveredCollections(networks[0], status.blockNumber), ['Org1MSPPrivateCollection', 'assetCollection']);
    assert.deepEqual(await deliveredCollections(networks[1], status.blockNumber), ['assetCollection']);
});
