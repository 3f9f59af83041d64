'use strict';

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { idBase, assetId } = require('./ids');

const COLORS = ['blue', 'red', 'green', 'yellow', 'black', 'white'];
const OWNERS = ['Tomoko', 'Brad', 'Jin Soo', 'Max', 'Adriana', 'Michel'];

/**
 * Round `create`: asset-transfer-basic CreateAsset(id, color, size, owner, appraisedValue), one new
 * asset per transaction, submitted (endorse -> submit -> commit status).
 * Arguments: contractId (default "basic"); idPrefix (default "asset", see ids.js).
 */
class CreateAssetWorkload extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        this.contractId = roundArguments.contractId || 'basic';
        this.base = idBase(roundArguments);
        this.txIndex = 0;
    }

    async submitTransaction() {
        const i = this.txIndex++;
        const request = {
            contractId: this.contractId,
            contractFunction: 'CreateAsset',
            contractArguments: [
                assetId(this.base, this.workerIndex, i),
                COLORS[i % COLORS.length],
                String(5 + (i % 20)),
                OWNERS[(i + this.workerIndex) % OWNERS.length],
                String(100 + i),
            ],
            readOnly: false,
        };
        await this.sutAdapter.sendRequests(request);
    }
}

function createWorkloadModule() {
    return new CreateAssetWorkload();
}

module.exports.createWorkloadModule = createWorkloadModule;
