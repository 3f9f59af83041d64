/*
 * asset-transfer-basic on fabric-contract-api, run as a service (`fabric-chaincode-node server`)
 * by tests/interop/test_ccaas_node.py. Written for this project: it answers as the Python port
 * src/medalliance/samples/asset_transfer_basic.py does (the Go sample's JSON, its integer
 * parsing and its messages), so both give the same bytes on the same calls.
 */
'use strict';

const { Contract } = require('fabric-contract-api');

const INITIAL = [
    ['asset1', 'blue', 5, 'Tomoko', 300],
    ['asset2', 'red', 5, 'Brad', 400],
    ['asset3', 'green', 10, 'Jin Soo', 500],
    ['asset4', 'yellow', 10, 'Max', 600],
    ['asset5', 'black', 15, 'Adriana', 700],
    ['asset6', 'white', 15, 'Michel', 800],
];
const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 63n - 1n;

// A JSON string as Go's encoding/json writes it: HTML characters and U+2028/9 escaped.
function goString(value) {
    return JSON.stringify(value)
        .replace(/</g, '\\u003c')
        .replace(/>/g, '\\u003e')
        .replace(/&/g, '\\u0026')
        .replace(/\u2028/g, '\\u2028')
        .replace(/\u2029/g, '\\u2029');
}

function assetJson(a) {
    return `{"AppraisedValue":${a.AppraisedValue},"Color":${goString(a.Color)},` +
        `"ID":${goString(a.ID)},"Owner":${goString(a.Owner)},"Size":${a.Size}}`;
}

// strconv.Atoi as fabric-contract-api-go applies it; "" is 0.
function goInt(value, param) {
    if (value === '') {
        return 0n;
    }
    if (/^[+-]?[0-9]+$/.test(value)) {
        const n = BigInt(value);
        if (n >= INT_MIN && n <= INT_MAX) {
            return n;
        }
    }
    throw new Error(`error managing parameter ${param}. conversion error. cannot convert passed value ${value} to int`);
}

function parseAsset(id, color, size, owner, appraisedValue) {
    return {
        ID: id, Color: color, Size: goInt(size, 'param2'), Owner: owner,
        AppraisedValue: goInt(appraisedValue, 'param4'),
    };
}

function decode(key, raw) {
    let doc;
    try {
        doc = JSON.parse(raw.toString('utf8'));
    } catch (err) {
        throw new Error(`the value of ${key} is not an asset: ${err.message}`);
    }
    if (doc === null) {
        doc = {};
    }
    if (typeof doc !== 'object' || Array.isArray(doc)) {
        throw new Error(`the value of ${key} is not an asset: not a JSON object`);
    }
    const fields = {};
    for (const [name, value] of Object.entries(doc)) {
        const field = ['AppraisedValue', 'Color', 'ID', 'Owner', 'Size']
            .find((f) => f.toLowerCase() === name.toLowerCase());
        if (field && value !== null) {
            fields[field] = value;
        }
    }
    const str = (name) => {
        const v = fields[name] ?? '';
        if (typeof v !== 'string') {
            throw new Error(`the value of ${key} is not an asset: ${name} is not a string`);
        }
        return v;
    };
    const int = (name) => {
        const v = fields[name] ?? 0;
        if (typeof v !== 'number' || !Number.isInteger(v)) {
            throw new Error(`the value of ${key} is not an asset: ${name} is not an int`);
        }
        return BigInt(v);
    };
    return { ID: str('ID'), Color: str('Color'), Size: int('Size'), Owner: str('Owner'), AppraisedValue: int('AppraisedValue') };
}

class SmartContract extends Contract {
    constructor() {
        super('SmartContract');
    }

    async InitLedger(ctx) {
        for (const [id, color, size, owner, value] of INITIAL) {
            const asset = { ID: id, Color: color, Size: size, Owner: owner, AppraisedValue: value };
            await ctx.stub.putState(id, Buffer.from(assetJson(asset)));
        }
    }

    async CreateAsset(ctx, id, color, size, owner, appraisedValue) {
        const asset = parseAsset(id, color, size, owner, appraisedValue);
        const existing = await ctx.stub.getState(id);
        if (existing && existing.length > 0) {
            throw new Error(`the asset ${id} already exists`);
        }
        await ctx.stub.putState(id, Buffer.from(assetJson(asset)));
    }

    async ReadAsset(ctx, id) {
        return assetJson(await this._read(ctx, id));
    }

    async UpdateAsset(ctx, id, color, size, owner, appraisedValue) {
        const asset = parseAsset(id, color, size, owner, appraisedValue);
        const existing = await ctx.stub.getState(id);
        if (!existing || existing.length === 0) {
            throw new Error(`the asset ${id} does not exist`);
        }
        await ctx.stub.putState(id, Buffer.from(assetJson(asset)));
    }

    async DeleteAsset(ctx, id) {
        const existing = await ctx.stub.getState(id);
        if (!existing || existing.length === 0) {
            throw new Error(`the asset ${id} does not exist`);
        }
        await ctx.stub.deleteState(id);
    }

    async AssetExists(ctx, id) {
        const existing = await ctx.stub.getState(id);
        return existing && existing.length > 0 ? 'true' : 'false';
    }

    async TransferAsset(ctx, id, newOwner) {
        const asset = await this._read(ctx, id);
        const previous = asset.Owner;
        asset.Owner = newOwner;
        await ctx.stub.putState(id, Buffer.from(assetJson(asset)));
        return previous;
    }

    async GetAllAssets(ctx) {
        const assets = [];
        const iterator = await ctx.stub.getStateByRange('', '');
        let result = await iterator.next();
        while (!result.done) {
            assets.push(decode(result.value.key, result.value.value));
            result = await iterator.next();
        }
        await iterator.close();
        if (assets.length === 0) {
            return '';
        }
        return '[' + assets.map(assetJson).join(',') + ']';
    }

    async _read(ctx, id) {
        const raw = await ctx.stub.getState(id);
        if (!raw || raw.length === 0) {
            throw new Error(`the asset ${id} does not exist`);
        }
        return decode(id, raw);
    }
}

module.exports.contracts = [SmartContract];
