// Fabric's unmodified `fabric-ca-client` (2.2) against Org1's medalliance Fabric CA, and the
// identity it enrols transacting through the unmodified `@hyperledger/fabric-gateway`.
//
// Run by tests/interop/test_node_gateway.py, which starts the network (with its CAs) and sets:
//   CA_URL, CA_NAME, CA_TLS_CA (Org1's TLS CA, PEM file), CA_ROOT (Org1's CA certificate),
//   CA_OUT (where to write the CRL and the revoked doctor's identity, JSON),
//   and the GATEWAY_* variables of gateway.test.mjs.
// The tests run in file order and share the identities they make.

import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';
import FabricCAServices from 'fabric-ca-client';
import { User } from 'fabric-common';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';

function env(name) {
    const value = process.env[name];
    if (!value) throw new Error(`environment variable ${name} is not set (run via test_node_gateway.py)`);
    return value;
}

const MSP_ID = env('GATEWAY_MSP_ID');
const ca = new FabricCAServices(
    env('CA_URL'),
    { trustedRoots: [readFileSync(env('CA_TLS_CA'), 'utf8')], verify: true },
    env('CA_NAME'),
);
const doctorId = `doctor-${randomBytes(4).toString('hex')}`;
let admin;
let doctor;
let doctorSecret;

test('the bootstrap registrar enrols with admin/adminpw', async () => {
    const enrollment = await ca.enroll({ enrollmentID: 'admin', enrollmentSecret: 'adminpw' });
    assert.match(enrollment.certificate, /BEGIN CERTIFICATE/);
    assert.equal(enrollment.rootCertificate.trim(), readFileSync(env('CA_ROOT'), 'utf8').trim());
    admin = User.createUser('admin', 'adminpw', MSP_ID, enrollment.certificate, enrollment.key.toBytes());
});

test('a wrong secret is refused', async () => {
    await assert.rejects(ca.enroll({ enrollmentID: 'admin', enrollmentSecret: 'wrong' }), /Authentication failure|authentication failure/i);
});

test('the registrar registers a doctor, who enrols with the alliance role in the certificate', async () => {
    doctorSecret = await ca.register(
        {
            enrollmentID: doctorId,
            affiliation: 'org1.department1',
            role: 'client',
            attrs: [{ name: 'role', value: 'doctor', ecert: true }],
        },
        admin,
    );
    assert.ok(doctorSecret.length >= 16);
    const enrollment = await ca.enroll({ enrollmentID: doctorId, enrollmentSecret: doctorSecret });
    const cert = new X509Certificate(enrollment.certificate);
    assert.match(cert.subject, new RegExp(`CN=${doctorId}`));
    assert.match(cert.subject, /OU=client/);
    assert.ok(cert.raw.includes(Buffer.from('"role":"doctor"')), 'the role attribute is in the certificate');
    doctor = { cert: enrollment.certificate, key: enrollment.key.toBytes(), serial: cert.serialNumber };
});

test('the identity service lists the new identity for the registrar', async () => {
    const listed = await ca.newIdentityService().getAll(admin);
    const ids = listed.result.identities.map((identity) => identity.id);
    assert.ok(ids.includes(doctorId), `${doctorId} in ${ids}`);
});

test('the enrolled doctor transacts through the Fabric Gateway client', async () => {
    const client = new grpc.Client(env('GATEWAY_ENDPOINT'), grpc.credentials.createSsl(readFileSync(env('GATEWAY_TLS_CA'))), {
        'grpc.ssl_target_name_override': env('GATEWAY_HOST_ALIAS'),
    });
    const gateway = connect({
        client,
        identity: { mspId: MSP_ID, credentials: Buffer.from(doctor.cert) },
        signer: signers.newPrivateKeySigner(createPrivateKey(doctor.key)),
        hash: hash.sha256,
    });
    try {
        const basic = gateway.getNetwork(env('GATEWAY_CHANNEL')).getContract(env('GATEWAY_BASIC'));
        const asset = `ca-asset-${randomBytes(4).toString('hex')}`;
        await basic.submitTransaction('CreateAsset', asset, 'blue', '5', doctorId, '100');
        const read = JSON.parse(new TextDecoder().decode(await basic.evaluateTransaction('ReadAsset', asset)));
        assert.equal(read.Owner, doctorId);
    } finally {
        gateway.close();
        client.close();
    }
});

test('revoking the doctor puts its serial in the CRL and refuses it from then on', async () => {
    const revoked = await ca.revoke({ enrollmentID: doctorId, reason: 'keycompromise' }, admin);
    const serials = revoked.result.RevokedCerts.map((c) => c.Serial.toUpperCase().replace(/^0+/, ''));
    assert.ok(serials.includes(doctor.serial.replace(/^0+/, '')), `${doctor.serial} in ${serials}`);
    const crl = Buffer.from(await ca.generateCRL({}, admin), 'base64').toString();
    assert.match(crl, /BEGIN X509 CRL/);
    // for the channel vote that follows (test_node_gateway.py): the CRL and the doctor's identity
    writeFileSync(env('CA_OUT'), JSON.stringify({ id: doctorId, serial: doctor.serial, cert: doctor.cert, key: doctor.key, crl }));
    await assert.rejects(ca.enroll({ enrollmentID: doctorId, enrollmentSecret: doctorSecret }), /revoked/);
});
