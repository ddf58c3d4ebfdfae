module.exports = class IndexSmall1767225600003 {
  name = 'IndexSmall1767225600003';

  async up(queryRunner) {
    await queryRunner.query(`CREATE INDEX "small_v_idx" ON "small" ("v") `);
  }

  async down(queryRunner) {
    await queryRunner.query(`DROP INDEX "public"."small_v_idx"`);
  }
};
