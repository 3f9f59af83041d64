/*
 * Private data collections through fabric-contract-api's stub, run as a service
 * (`fabric-chaincode-node server`) by tests/interop/test_ccaas_private_data.py. Written for
 * this project: each function is one private data call of the shim, so the test sees each
 * message (GET_STATE / PUT_STATE / DEL_STATE / GET_STATE_BY_RANGE with a collection,
 * GET_PRIVATE_DATA_HASH, PURGE_PRIVATE_DATA) served by a medalliance peer. Values come in the
 * transient map (key "value"), never in arguments.
 */
'use strict';

const { Contract } = require('fabric-contract-api');

class PrivateNotes extends Contract {
    constructor() {
        super('PrivateNotes');
    }

    async Put(ctx, collection, key) {
        const value = ctx.stub.getTransient().get('value');
        if (!value || value.length === 0) throw new Error('the value must come in the transient map under "value"');
        await ctx.stub.putPrivateData(collection, key, value);
    }

    async Get(ctx, collection, key) {
        return Buffer.from(await ctx.stub.getPrivateData(collection, key)).toString('utf8');
    }

    async Hash(ctx, collection, key) {
        return Buffer.from(await ctx.stub.getPrivateDataHash(collection, key)).toString('hex');
    }

    async Delete(ctx, collection, key) {
        await ctx.stub.deletePrivateData(collection, key);
    }

    async Purge(ctx, collection, key) {
        await ctx.stub.purgePrivateData(collection, key);
    }

    async Range(ctx, collection, startKey, endKey) {
        const keys = [];
        for await (const entry of ctx.stub.getPrivateDataByRange(collection, startKey, endKey)) keys.push(entry.key);
        return JSON.stringify(keys);
    }

    async WhoEndorses(ctx) {
        return ctx.stub.getMspID();
    }
}

module.exports.contracts = [PrivateNotes];
