'use strict';

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { idBase, assetId } = require('./ids');

/**
 * Round `read`: asset-transfer-basic ReadAsset(id) of the assets the `create` round made,
 * evaluated only (readOnly: no ordering, no commit). Worker w reads the assets of worker
 * (w + k) mod totalWorkers in turn, cycling through the txIndex range.
 * Arguments: contractId (default "basic"); idPrefix (default "asset": that of the create round,
 * see ids.js); assets: the create round's txNumber (Caliper gives
 * each worker floor(txNumber / workers) transactions).
 */
class ReadAssetWorkload extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        this.contractId = roundArguments.contractId || 'basic';
        this.base = idBase(roundArguments);
        const assets = Number(roundArguments.assets);
        if (!Number.isInteger(assets) || assets < totalWorkers) {
            throw new Error(`read workload: argument "assets" must be the create round's txNumber (>= ${totalWorkers}), got ${roundArguments.assets}`);
        }
        this.perWorker = Math.floor(assets / totalWorkers);
        this.count = 0;
    }

    async submitTransaction() {
        const n = this.count++;
        const creator = (this.workerIndex + n) % this.totalWorkers;
        const index = Math.floor(n / this.totalWorkers) % this.perWorker;
        const request = {
            contractId: this.contractId,
            contractFunction: 'ReadAsset',
            contractArguments: [assetId(this.base, creator, index)],
            readOnly: true,
        };
        await this.sutAdapter.sendRequests(request);
    }
}

function createWorkloadModule() {
    return new ReadAssetWorkload();
}

module.exports.createWorkloadModule = createWorkloadModule;
