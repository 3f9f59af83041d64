'use strict';

/**
 * Asset ids shared by the create and read rounds: `<run>_<idPrefix>_<workerIndex>_<txIndex>`,
 * unique per worker and per transaction.
 *
 * - run: the MEDALLIANCE_CALIPER_RUN environment variable (run.sh sets a fresh one per run, so the
 *   benchmark can be repeated on the same network: CreateAsset refuses an existing id), else
 *   "caliper".
 * - idPrefix: the round argument `idPrefix` (default "asset"). Give each create round of one run
 *   its own prefix, and a read round the prefix of the create round whose assets it reads.
 */
function idBase(roundArguments) {
    const run = process.env.MEDALLIANCE_CALIPER_RUN || 'caliper';
    const prefix = (roundArguments && roundArguments.idPrefix) || 'asset';
    return `${run}_${prefix}`;
}

function assetId(base, workerIndex, txIndex) {
    return `${base}_${workerIndex}_${txIndex}`;
}

module.exports = { idBase, assetId };
